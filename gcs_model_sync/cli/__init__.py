"""The command line: options to Config, the commands, and what they print."""
