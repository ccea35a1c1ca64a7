"""Number formatting for the gallery pages."""

from django import template

register = template.Library()


@register.filter
def bpp(value) -> str:
    return "–" if value is None else f"{float(value):.3f} bpp"


@register.filter
def ratio(value) -> str:
    """``98.4`` → ``98× smaller``; below 10 one decimal is kept."""
    if not value:
        return "–"
    value = float(value)
    shown = f"{value:.1f}" if value < 10 else f"{value:.0f}"
    return f"{shown}× smaller" if value >= 1 else f"{1 / value:.1f}× larger"


@register.filter
def percent(value, digits: int = 0) -> str:
    return "–" if value is None else f"{float(value) * 100:.{int(digits)}f} %"


@register.filter
def seconds(value) -> str:
    return "–" if value is None else f"{float(value):.1f} s"


@register.simple_tag
def signup_open() -> bool:
    """Whether self-service sign-up is on (GALLERY_SIGNUP_OPEN)."""
    from gallery.accounts import signup_open as is_open

    return is_open()
