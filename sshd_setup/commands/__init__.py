"""One module per command: the I/O edge that wires inventory, core and transport."""
