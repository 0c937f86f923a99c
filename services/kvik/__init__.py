"""The KVIK service: kiosk devices and the self-service sessions they post."""
