"""Server-side SVG charts for the dashboard: no JavaScript library, no CDN.

Every piece of text that goes into a chart (annotator names above all) is escaped.
"""

from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe


def _colour(value: float | None) -> str:
    """Kappa-like values: red below 0, pale at 0, green towards 1; grey when unknown."""
    if value is None:
        return "#e5e7eb"
    value = max(-1.0, min(1.0, value))
    if value < 0:
        return f"hsl(0, 70%, {90 - 35 * -value:.0f}%)"
    return f"hsl(130, 55%, {95 - 55 * value:.0f}%)"


def heatmap(names: list[str], value: dict[tuple[int, int], float | None]) -> SafeString:
    """A names × names grid; value[(i, j)] for i != j written in its cell (to two places,
    light on the darker colours), missing pairs left blank."""
    cell = 36
    label_width = 14 + 7 * max([len(name[:22]) for name in names] + [4])
    size = len(names)
    width = height = label_width + cell * size + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart heatmap" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        "<title>Cohen's kappa between annotators</title>",
    ]
    for i, name in enumerate(names):
        text = escape(name[:22])
        y = label_width + i * cell + cell * 0.65
        parts.append(f'<text x="{label_width - 6}" y="{y:.1f}" text-anchor="end">{text}</text>')
        x = label_width + i * cell + cell * 0.65
        parts.append(
            f'<text transform="translate({x:.1f},{label_width - 6}) rotate(-60)">{text}</text>'
        )
    for i in range(size):
        for j in range(size):
            if i == j:
                fill, tip = "#9ca3af", escape(names[i])
            elif (i, j) in value:
                kappa = value[(i, j)]
                fill = _colour(kappa)
                shown = "n/a" if kappa is None else f"{kappa:.2f}"
                tip = f"{escape(names[i])} × {escape(names[j])}: κ = {shown}"
            else:
                fill, tip = "#ffffff", f"{escape(names[i])} × {escape(names[j])}: no overlap"
            x, y = label_width + j * cell, label_width + i * cell
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cell - 1}" height="{cell - 1}" fill="{fill}">'
                f"<title>{tip}</title></rect>"
            )
            kappa = value.get((i, j)) if i != j else None
            if kappa is not None:
                ink = "#ffffff" if abs(kappa) > 0.6 else "#111827"
                parts.append(
                    f'<text x="{x + (cell - 1) / 2:.1f}" y="{y + cell * 0.6:.1f}" '
                    f'text-anchor="middle" font-size="11" fill="{ink}" class="cell-value">'
                    f"{kappa:.2f}</text>"
                )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - built from escaped text and numbers


def bars(items: list[tuple[str, int]], colours: dict[str, str] | None = None) -> SafeString:
    """Horizontal bars with their counts."""
    colours = colours or {}
    row, label_width, bar_width = 26, 90, 320
    top = max([count for _, count in items] + [1])
    height = row * len(items) + 6
    width = label_width + bar_width + 70
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart bars" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
    ]
    for k, (label, count) in enumerate(items):
        y = k * row + 4
        length = bar_width * count / top
        fill = colours.get(label, "#2f5bd3")
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 15}" text-anchor="end">{escape(label)}</text>'
        )
        parts.append(
            f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="{row - 8}" '
            f'fill="{fill}"><title>{escape(label)}: {count}</title></rect>'
        )
        parts.append(f'<text x="{label_width + length + 6:.1f}" y="{y + 15}">{count:,}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - built from escaped text and numbers


def line(points: list[tuple[str, float | None]], threshold: float | None = None) -> SafeString:
    """A 0–1 line over labelled x positions, with an optional dashed threshold."""
    width, height, pad = 560, 200, 34
    usable = [(k, v) for k, (_, v) in enumerate(points) if v is not None]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart line" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - 8}" y2="{height - pad}" '
        'stroke="#9ca3af"/>',
        f'<line x1="{pad}" y1="8" x2="{pad}" y2="{height - pad}" stroke="#9ca3af"/>',
    ]

    def x_of(k: int) -> float:
        return pad + (width - pad - 16) * (k / max(len(points) - 1, 1))

    def y_of(v: float) -> float:
        return height - pad - (height - pad - 8) * v

    for tick in (0.0, 0.5, 1.0):
        parts.append(
            f'<text x="{pad - 6}" y="{y_of(tick) + 4:.1f}" text-anchor="end">{tick:.1f}</text>'
        )
    if threshold is not None:
        parts.append(
            f'<line x1="{pad}" y1="{y_of(threshold):.1f}" x2="{width - 8}" '
            f'y2="{y_of(threshold):.1f}" stroke="#b42318" stroke-dasharray="4 4">'
            f"<title>threshold {threshold:.2f}</title></line>"
        )
    if usable:
        path = " ".join(f"{x_of(k):.1f},{y_of(v):.1f}" for k, v in usable)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#2f5bd3" stroke-width="2"/>')
        for k, v in usable:
            parts.append(
                f'<circle cx="{x_of(k):.1f}" cy="{y_of(v):.1f}" r="3" fill="#2f5bd3">'
                f"<title>{escape(points[k][0])}: {v:.2f}</title></circle>"
            )
    if points:
        for k in sorted({0, len(points) - 1}):
            parts.append(
                f'<text x="{x_of(k):.1f}" y="{height - pad + 16}" text-anchor="middle">'
                f"{escape(points[k][0])}</text>"
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - built from escaped text and numbers


def distinct_labels(ticks: tuple[float, ...]) -> list[str]:
    """Tick labels with as few significant digits as tell them apart (a loss that moves
    between 0.69312 and 0.69318 does not label its axis 0.693 three times)."""
    for digits in range(3, 9):
        labels = [f"{tick:.{digits}g}" for tick in ticks]
        if len(set(labels)) == len(labels):
            return labels
    return labels


def _thinned(points: list, max_points: int) -> list:
    """About `max_points` of the points, the last one kept; points without a value dropped."""
    points = [(x, y) for x, y in points if x is not None and y is not None]
    stride = max(1, -(-len(points) // max_points))
    if stride > 1:
        points = points[::stride] + ([points[-1]] if (len(points) - 1) % stride else [])
    return points


@dataclass(frozen=True)
class _Frame:
    """A line chart's plotting area and the mapping of values onto it."""

    x_low: float
    x_high: float
    y_low: float
    y_high: float
    width: int = 560
    height: int = 220
    left: int = 52
    bottom: int = 30
    top: int = 26
    right: int = 12

    def x_of(self, x: float) -> float:
        span = self.width - self.left - self.right
        return self.left + span * (x - self.x_low) / (self.x_high - self.x_low)

    def y_of(self, y: float) -> float:
        y = max(self.y_low, min(self.y_high, y))
        span = self.height - self.bottom - self.top
        return (
            self.height - self.bottom - span * (y - self.y_low) / (self.y_high - self.y_low or 1.0)
        )


def _frame(plotted, x_max, y_range, reference) -> _Frame:
    xs = [x for _, _, points in plotted for x, _ in points]
    ys = [y for _, _, points in plotted for _, y in points]
    if y_range is None:
        low, high = (min(ys), max(ys)) if ys else (0.0, 1.0)
        if reference is not None:
            low, high = min(low, reference[1]), max(high, reference[1])
        spread = (high - low) or abs(high) or 1.0
        y_range = (low - 0.05 * spread, high + 0.05 * spread)
    x_low = min(xs + [0.0])
    return _Frame(x_low, max(xs + [x_max or 0.0, x_low + 1.0]), *y_range)


def _axes(f: _Frame, x_label: str, reference: tuple[str, float] | None) -> list[str]:
    parts = [
        f'<line x1="{f.left}" y1="{f.height - f.bottom}" x2="{f.width - f.right}" '
        f'y2="{f.height - f.bottom}" stroke="#9ca3af"/>',
        f'<line x1="{f.left}" y1="{f.top}" x2="{f.left}" y2="{f.height - f.bottom}" '
        'stroke="#9ca3af"/>',
    ]
    y_ticks = (f.y_low, (f.y_low + f.y_high) / 2, f.y_high)
    for tick, text in zip(y_ticks, distinct_labels(y_ticks), strict=True):
        parts.append(
            f'<text x="{f.left - 6}" y="{f.y_of(tick) + 4:.1f}" text-anchor="end">{text}</text>'
        )
    for tick in sorted({f.x_low, f.x_high}):
        parts.append(
            f'<text x="{f.x_of(tick):.1f}" y="{f.height - f.bottom + 16}" '
            f'text-anchor="middle">{tick:g}</text>'
        )
    if x_label:
        parts.append(
            f'<text x="{(f.left + f.width - f.right) / 2:.1f}" y="{f.height - f.bottom + 16}" '
            f'text-anchor="middle">{escape(x_label)}</text>'
        )
    if reference is not None:
        label, value = reference
        parts.append(
            f'<line x1="{f.left}" y1="{f.y_of(value):.1f}" x2="{f.width - f.right}" '
            f'y2="{f.y_of(value):.1f}" stroke="#b42318" stroke-dasharray="4 4">'
            f"<title>{escape(label)} {value:g}</title></line>"
        )
    return parts


def _lines(f: _Frame, plotted) -> list[str]:
    """Each series' legend entry, line, and (while there are few) its points with values."""
    parts = []
    legend_x = f.left
    for name, colour, points in plotted:
        parts.append(
            f'<rect x="{legend_x}" y="6" width="10" height="10" fill="{colour}"/>'
            f'<text x="{legend_x + 14}" y="15">{escape(name)}</text>'
        )
        legend_x += 24 + 7 * len(name)
        if len(points) > 1:
            path = " ".join(f"{f.x_of(x):.1f},{f.y_of(y):.1f}" for x, y in points)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>'
            )
        if len(points) <= 60:
            for x, y in points:
                parts.append(
                    f'<circle cx="{f.x_of(x):.1f}" cy="{f.y_of(y):.1f}" r="2.5" fill="{colour}">'
                    f"<title>{escape(name)} at {x:g}: {y:.4g}</title></circle>"
                )
    return parts


def curves(
    series: list[tuple[str, str, list[tuple[float, float]]]],
    *,
    x_max: float | None = None,
    y_range: tuple[float, float] | None = None,
    reference: tuple[str, float] | None = None,
    x_label: str = "",
    max_points: int = 400,
) -> SafeString:
    """Numeric x/y lines, e.g. loss per training step; series are (name, colour, points).

    Long series are thinned to about `max_points` (keeping the last point); a series with one
    point shows as a dot. `reference` draws a dashed, labelled horizontal line.
    """
    plotted = [(name, colour, _thinned(points, max_points)) for name, colour, points in series]
    f = _frame(plotted, x_max, y_range, reference)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart curves" role="img" '
        f'width="{f.width}" height="{f.height}" viewBox="0 0 {f.width} {f.height}">',
        *_axes(f, x_label, reference),
        *_lines(f, plotted),
        "</svg>",
    ]
    return mark_safe("".join(parts))  # noqa: S308 - built from escaped text and numbers


def grouped_bars(
    groups: list[str],
    series: list[tuple[str, str, list[float | None]]],
    *,
    y_range: tuple[float, float] = (0.0, 1.0),
    reference: tuple[str, float] | None = None,
    percent: bool = False,
) -> SafeString:
    """Vertical bars: one cluster per group, one bar per series (name, colour, a value per
    group) in each, e.g. accuracy by difficulty for several models. A value of None leaves a
    gap; bars grow from 0 (or the range's edge), so negative values hang down."""
    width, height, left, bottom, right = 560, 240, 48, 30, 12
    legend, legend_x, legend_y = [], left, 6
    for name, colour, _ in series:
        item = 24 + 7 * len(name[:40])
        if legend_x + item > width - right and legend_x > left:  # wrap long legends
            legend_x, legend_y = left, legend_y + 16
        legend.append(
            f'<rect x="{legend_x}" y="{legend_y}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{legend_x + 14}" y="{legend_y + 9}">{escape(name[:40])}</text>'
        )
        legend_x += item
    top = legend_y + 22
    low, high = y_range
    slot = (width - left - right) / max(len(groups), 1)
    bar = min(36.0, (slot - 12) / max(len(series), 1))

    def y_of(value: float) -> float:
        value = max(low, min(high, value))
        return height - bottom - (height - bottom - top) * (value - low) / ((high - low) or 1.0)

    def shown(value: float) -> str:
        return f"{100 * value:.1f}%" if percent else f"{value:.3g}"

    base = y_of(max(low, min(high, 0.0)))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart grouped-bars" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#9ca3af"/>',
        f'<line x1="{left}" y1="{base:.1f}" x2="{width - right}" y2="{base:.1f}" '
        'stroke="#9ca3af"/>',
    ]
    for tick in (low, (low + high) / 2, high):
        label = f"{100 * tick:.0f}%" if percent else f"{tick:.3g}"
        parts.append(
            f'<text x="{left - 6}" y="{y_of(tick) + 4:.1f}" text-anchor="end">{label}</text>'
        )
    parts.extend(legend)
    for g, group in enumerate(groups):
        start = left + g * slot + (slot - bar * len(series)) / 2
        for s, (name, colour, values) in enumerate(series):
            value = values[g] if g < len(values) else None
            if value is None:
                continue
            y = y_of(value)
            parts.append(
                f'<rect x="{start + s * bar + 1:.1f}" y="{min(y, base):.1f}" '
                f'width="{max(bar - 2, 1):.1f}" height="{abs(base - y):.1f}" fill="{colour}">'
                f"<title>{escape(name)}, {escape(group)}: {shown(value)}</title></rect>"
            )
        parts.append(
            f'<text x="{left + (g + 0.5) * slot:.1f}" y="{height - bottom + 16}" '
            f'text-anchor="middle">{escape(group)}</text>'
        )
    if reference is not None:
        label, value = reference
        parts.append(
            f'<line x1="{left}" y1="{y_of(value):.1f}" x2="{width - right}" y2="{y_of(value):.1f}" '
            f'stroke="#b42318" stroke-dasharray="4 4"><title>{escape(label)} {shown(value)}</title>'
            "</line>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - built from escaped text and numbers
