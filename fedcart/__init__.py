"""fedcart: the command line that wires the bridge and the cart together."""
