"""The metrics service: counts contacts by channel and mode; the digital share per district."""
