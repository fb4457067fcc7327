"""Model-server kinds behind one protocol: ask what is loaded, write the config it reads."""
