"""fedcart: the command line, and the only place the bridge and the cart meet.

cli.py            assembles the command groups below into `fedcart`
bridge_cmd.py     `fedcart bridge`
cart_cmd.py       `fedcart node`
authority_cmd.py  `fedcart authority init | show`, `fedcart enrol`, `fedcart revoke`
swarm_cmd.py      `fedcart swarm` (what `make run` runs)
local_swarm.py    the local swarm as supervised child processes
swarm_status.py   the local swarm's live status, polled from every node's HTTP API
simulate_cmd.py   `fedcart simulate`
simulation.py     federated vs centralized vs local-only on one machine
inprocess.py      an in-process swarm (real bridges and CartNodes on one loop):
                  the simulator, the experiment and the round tests share it
cartgroup.py      the simulator's carts as one group: on this loop, or hosted by Ray actors
raysim.py         `fedcart simulate --backend ray`: carts spread over Ray actors (the `ray` extra)
experiment_cmd.py `fedcart experiment`
experiment/       the IoT experiment harness, its resources, report and plots
data_cmd.py       `fedcart data synth | qr make | train | export`
"""
