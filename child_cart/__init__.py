"""child_cart: the cart. Store, data collection, tasks, federated rounds, Flask UI."""
