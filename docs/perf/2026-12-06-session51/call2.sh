#!/usr/bin/env bash
# Session 51, call 2: a committed run on the card this call gets: bench/committed_run.sh with the
# CLI (gzipped) and wheel in .device/s51z, built here from main at the commit its run.tgz names.
# Carry [".device/s51z", ".carry"].
bench/committed_run.sh .device/s51z $OUT 450
