"""A client secret where it does not belong, in the shapes people paste it."""


def secret_shapes(secret: str, client_id: str) -> list[str]:
    """The secret alone, quoted, after a colon, after its client ID (whole,
    and cut where a client ID field cuts), upper-cased, padded."""
    return [
        secret,
        f'"{secret}"',
        f"'{secret}'",
        f"x:{secret}",
        f"{client_id}:{secret}",
        f"{client_id}:{secret}"[:64],
        secret.upper(),
        f"  {secret}  ",
    ]


def leaks(text: str, secret: str) -> bool:
    """Whether `text` holds ten characters in a row of the secret's random
    part, in any case."""
    body, text = secret.removeprefix("acsec_").lower(), text.lower()
    return any(body[i : i + 10] in text for i in range(len(body) - 9))
