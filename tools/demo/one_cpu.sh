#!/bin/sh
# Runs a command pinned to a single CPU: the first one this process may run on
# (cpu 0 on most machines; not necessarily in a container with a cpuset).
cpu="$(sed -n 's/^Cpus_allowed_list:[[:space:]]*\([0-9]*\).*/\1/p' /proc/self/status)"
exec taskset -c "${cpu:-0}" "$@"
