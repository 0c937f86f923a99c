"""The traffic simulator of ``kanalhub simulate`` (docs/simulation.md), in three modules:

- :mod:`~services.hub.simulator.traffic` - the traffic model: what Copenhagen's citizens do,
  day by day and channel by channel (pure, deterministic for a seed; also the one generator of
  KVIK sessions the benchmarks use);
- :mod:`~services.hub.simulator.driver` - the HTTP driver: sends the model's days to a running
  hub through the services' APIs, with the retries of real clients, and keeps the books
  (``replay`` and ``realtime``);
- :mod:`~services.hub.simulator.live` - live kiosks (``--kiosks N``): a fleet posting sessions
  at a chosen rate, going offline and uploading backlogs.
"""
