"""kanalhub: the four services, the event contract, the plumbing and the embedded hub launcher."""
