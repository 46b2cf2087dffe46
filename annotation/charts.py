"""Server-side SVG charts for the dashboard: no JavaScript library, no CDN.

Every piece of text that goes into a chart (annotator names above all) is escaped.
"""

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
    """A names × names grid; value[(i, j)] for i != j, missing pairs left blank."""
    cell = 26
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
            parts.append(
                f'<rect x="{label_width + j * cell}" y="{label_width + i * cell}" '
                f'width="{cell - 1}" height="{cell - 1}" fill="{fill}"><title>{tip}</title></rect>'
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
