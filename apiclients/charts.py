"""A small bar chart of daily token counts, drawn as SVG on the server (no
JavaScript, no inline styles: colours come from app.css classes)."""

from datetime import date

WIDTH = 300
HEIGHT = 72
GAP = 2


def token_chart(series: list[tuple[date, int]]) -> dict:
    """Geometry for templates/apiclients/_token_chart.html."""
    days = len(series)
    peak = max((n for _, n in series), default=0)
    bar_width = (WIDTH - GAP * (days - 1)) / days if days else 0
    bars = []
    for i, (day, n) in enumerate(series):
        # A day with tokens is always visible, however small next to the peak.
        height = 0 if not n else max(2.0, HEIGHT * n / peak)
        bars.append(
            {
                "x": round(i * (bar_width + GAP), 2),
                "y": round(HEIGHT - height, 2),
                "width": round(bar_width, 2),
                "height": round(height, 2),
                "day": day,
                "count": n,
            }
        )
    return {
        "bars": bars,
        "total": sum(n for _, n in series),
        "peak": peak,
        "days": days,
        "first": series[0][0] if series else None,
        "last": series[-1][0] if series else None,
        "width": WIDTH,
        "height": HEIGHT,
    }
