"""Deploy a fleet to real boards: plan, provisioning scripts, certificates, broker config, services, `make deploy`.

Shell scripts and file templates live in `firmware_scripts/templates/` (package data); the
Python modules render them per board and ship them over SSH.
"""
