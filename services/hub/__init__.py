"""The ``kanalhub`` command: the embedded hub launcher, one-service runner and developer tools."""
