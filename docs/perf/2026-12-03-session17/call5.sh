#!/usr/bin/env bash
# Session 17's call 5 never ran in session 17: it ran as session 18's call 1, with a sweep of the
# small preset's split added at its end: ../2026-12-03-session18/call1.sh (outputs beside it).
exec bash "$(dirname "$0")/../2026-12-03-session18/call1.sh"
