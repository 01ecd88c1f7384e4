"""The REST API of trial set-up (token or session auth), same permissions as the admin."""
