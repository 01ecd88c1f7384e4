"""What readers and seniors do in the browser: worklists, reading, senior review."""
