"""Server-side SVG charts: grouped bars, curves."""

import re

from annotation.agreement.charts import curves, grouped_bars


def test_grouped_bars_draw_one_bar_per_known_value_and_escape_names():
    svg = grouped_bars(
        ["easy", "hard"],
        [("<b>model</b>", "#123456", [0.9, None]), ("other", "#654321", [0.8, 0.6])],
        reference=("chance", 0.5),
        percent=True,
    )
    assert svg.count("<rect") == 2 + 3  # two legend swatches, three bars (one value unknown)
    assert "&lt;b&gt;model&lt;/b&gt;, easy: 90.0%" in svg and "<b>model" not in svg
    assert "other, hard: 60.0%" in svg and "chance 50.0%" in svg


def test_grouped_bars_hang_negative_values_below_zero():
    svg = grouped_bars(["r"], [("m", "#000", [-0.5])], y_range=(-1.0, 1.0))
    bar = svg.split('fill="#000"><title>')[0].rsplit("<rect", 1)[1]
    y = float(bar.split('y="')[1].split('"')[0])
    height = float(bar.split('height="')[1].split('"')[0])
    zero = float(svg.split('y1="')[2].split('"')[0])  # the second axis line is the zero line
    assert abs(y - zero) < 0.01 and height > 0


def test_a_loss_that_barely_moves_labels_its_axis_with_distinct_ticks():
    svg = str(
        curves([("loss", "#000", [(1, 0.69312), (2, 0.69315), (3, 0.69318)])], x_label="step")
    )
    ticks = re.findall(r'text-anchor="end">([^<]+)</text>', svg)
    assert len(ticks) == 3 and len(set(ticks)) == 3, ticks
    assert svg.count(">step</text>") == 1


def test_the_kappa_heatmap_writes_each_figure_in_its_cell():
    from annotation.agreement.charts import heatmap

    kappas = {(0, 1): 0.8123, (1, 0): 0.8123, (0, 2): -0.25, (2, 0): -0.25, (1, 2): None,
              (2, 1): None}  # fmt: skip
    svg = str(heatmap(["ann", "bob", "<cy>"], kappas))
    written = [part.split(">")[1].split("<")[0] for part in svg.split('class="cell-value"')[1:]]
    assert sorted(written) == ["-0.25", "-0.25", "0.81", "0.81"]  # none for "no figure"
    assert 'fill="#ffffff" class="cell-value">0.81' in svg  # light on the dark green
    assert "&lt;cy&gt;" in svg and "<cy>" not in svg
