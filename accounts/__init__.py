"""Two-factor sign-in (TOTP codes and recovery codes, django-otp) for the people who need it.

Sits at the bottom layer beside ``trial``: it may import ``trial``; ``trial`` never imports it.
"""
