#!/usr/bin/env bash
# Session 51, call 2: a committed run of main 3e386ac (with experiment 89) on the card this call gets:
# bench/committed_run.sh with the CLI (gzipped) and wheel in .device/s51z. Carry [".device/s51z",
# ".carry"] (the tracked files are 44.5 MiB of the call's 64).
bench/committed_run.sh .device/s51z $OUT 450
