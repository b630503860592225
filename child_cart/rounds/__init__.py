"""Federated rounds: local training, update exchange with peers, aggregation, acceptance, publishing.

A round is a workflow of phase objects the engine runs in order; another shape
of round is another workflow, not an edit of the engine:

    workflow.py    Phase names, the RoundContext phases share, the RoundPhase interface, Workflow
    phases.py      the built-in phases (train, exchange, aggregate, evaluate, local-only, decide, publish), DEFAULT_WORKFLOW
    personalize.py PERSONALIZE: fine-tune the aggregate on the cart's own rows; OFFER_BODY/ATTACH_HEAD: share a body, keep a local head
    privacy.py     client-level differential privacy: PRIVATIZE (clip + Gaussian noise before offering), the workflow by settings
    secure.py      secure aggregation: masked EXCHANGE, AGGREGATE and EVALUATE (the sum only, never one update), by settings
    accountant.py  the privacy accountant: each cart's ledger of shared rounds, ε by RDP, the privacy settings' checks
    acceptance.py  the acceptance rule: which of aggregate, local, current and best-so-far model a round keeps
    swarm_model.py ADOPT: the last aggregate adopted, which the next round trains from (the kept model is served)
    engine.py      RoundEngine: runs a workflow each round, times every phase, logs and announces the round
    learner.py     Learner: the task's Keras model trained and scored on this cart's rows, off the event loop
    exchange.py    UpdateExchange: ask peers for their update, answer theirs, check every answer before use
    asks.py        Asks: one exchange's requests and spares, and when a silent or failed peer gets a spare asked
    recent.py      RecentKeys: what ended lately, so a late answer is told from a stray one
    network.py     Network: what rounds need from the bridge connection (directory, routed frames, transfers)
    settings.py    RoundSettings: what an admin may change between rounds, validated and stored
    roundlog.py    RoundRecord: the round log the engine writes and the admin page and reports read
    publish.py     PhonePublisher: export an accepted model to TFLite and hand it to the bridge for phones
"""
