"""Pure decisions, no I/O: which versions to install, wait for, refuse or delete, and why."""
