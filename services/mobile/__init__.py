"""The mobile service: planning of mobile citizen-service visits, bookings and contacts."""
