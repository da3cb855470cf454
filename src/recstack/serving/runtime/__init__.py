"""One app instance: loading and hot-swapping model slots, worker coordination (Redis or shared
files), caches, rate limits, jobs and the operations behind the routes — no HTTP status codes."""
