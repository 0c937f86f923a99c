"""What the integration tests of every service share: a running app with its lifespan
(``apps``), bearer headers for roles (``tokens``) and a reader of a Kafka topic that waits for
the events it expects (``topics``)."""
