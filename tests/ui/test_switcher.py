"""The tab bar's layout: all nine tabs on one line from 60 columns, the widest form that fits."""

from __future__ import annotations

import pytest

from mlxtui.ui.keys import PANES, SHORT_TITLES
from mlxtui.ui.switcher import tab_layout

TITLES = [(pane, title, SHORT_TITLES[pane]) for pane, title in PANES]


@pytest.mark.parametrize("width", range(60, 141))
def test_every_tab_fits_in_order_without_overlap(width: int) -> None:
    labels, spans = tab_layout(TITLES, width)
    assert [s.pane for s in spans] == [pane for pane, _ in PANES]
    assert all(s.end - s.start == len(label) for s, label in zip(spans, labels))
    assert all(a.end < b.start for a, b in zip(spans, spans[1:]))  # at least one cell between two labels
    assert spans[-1].end <= width


def test_the_widest_form_that_fits_is_chosen() -> None:
    wide, _ = tab_layout(TITLES, 120)
    assert wide[0] == "1 Search" and wide[-1] == "9 Hosts"
    _, padded = tab_layout(TITLES, 85)
    assert padded[0].start == 1 and padded[1].start - padded[0].end == 2  # a cell on each side of a label
    _, tight = tab_layout(TITLES, 80)
    assert tight[1].start - tight[0].end == 1
    short, _ = tab_layout(TITLES, 70)
    assert short[0] == "1 Srch" and short[-1] == "9 Hst"
