"""Silences and maintenance windows: alerts that notify nobody, nodes that raise no NODE_DOWN.

A silence is a set of matchers over an alert's labels with a start and an end, kept on the
compacted silences topic (`client`); which silence covers an alert is pure (`matching`);
services keep the current silences in a `SilenceBook` fed from the topic (`book`); what a
person types (matchers, spans, a new silence) is read in one place (`parsing`).
"""
