"""Masked copies: production-shaped data without the people in it (README, "Masked
copies"). ``policy`` says what to mask, ``apply`` masks a restored sandbox in place,
``scan`` finds what the policy forgot, and the ``masking_leaks`` probe proves it."""
