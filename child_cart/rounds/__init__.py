"""Federated rounds: local training, update exchange with peers, aggregation, acceptance, publishing."""
