"""The fleet lab: boards as they really are, on one machine.

arm64 Debian boards under qemu (systemd-nspawn, sshd, `make deploy` onto them), and native board processes each
with its own CPU quota (cgroups) and its own network namespace with a shaped link. Workstation side: boards never
receive this package.
"""
