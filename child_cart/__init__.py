"""child_cart: the cart. Store, data collection, tasks, federated rounds, Flask UI.

One room per concern; each module owns one idea:

    node.py        the cart process: store, bridge connection, background rounds, the UI
    settings.py    CartSettings (flags > environment > .env > defaults)
    events.py      in-process event bus: rounds publish, the UI's live stream subscribes
    qr.py          product QR codes: make them and read them from uploads and cameras
    shop.py        the shopper's flow: find (search, browse), scan or add to the bill, remove, check out, receipts
    store/         the document store (MongoDB or embedded), the catalogue, purchase rows
    synth/         seeded synthetic data: shoppers (purchases), IoT traffic and weather
    tasks/         what a cart learns: the Task interface, registry, built-in tasks,
                   local training, and inference for the home page (recommender.py)
    aggregation/   aggregation rules (FedAvg, median, trimmed mean, Krum, tree union)
    rounds/        the federated round: phases and the engine that runs them, update
                   exchange, round settings, the round log, publishing for phones
    models/        the cart's model versions on disk and TFLite export
    ui/            the Flask UI: home, admin pages, JSON API, live events
"""
