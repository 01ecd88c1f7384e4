"""What people do in the browser: worklists, reading, senior review, rating."""
