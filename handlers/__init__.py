"""Routing: which command, button or dialog an update goes to, and the
middlewares around it (duplicate events, who the resident is, their lock,
language, staff role, throttle, input checks)."""
