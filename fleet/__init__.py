"""The workstation's fleet harness: the one-machine demo, the local fleet and broker it runs, its processes, the
terminal dashboard and the views and probes around them. Never shipped to a board (firmware_scripts/board_tree.py
ships the board runtime only)."""
