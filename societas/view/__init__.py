"""`societas view`: a local web app over a folder of runs, read-only, refreshed while runs play.

Modules: `catalog` (which runs and sweeps a folder holds, their status and
totals from the files alone), `liveness` (whether a process is playing a run,
without touching its lock), `transcripts` (the transcript browser's filters
and pages), `render` (report sections per run version, one render at a time),
`app` (the FastAPI routes and the uvicorn server). Pages are Jinja2 templates
and one stylesheet (`static/view.css`), shipped as package data: no build
step, nothing fetched from the network. Needs the `[view]` extra.
"""
