"""People's accounts: two-factor sign-in (TOTP codes and recovery codes, django-otp), invitations,
password resets by e-mail, and the admin's *People* page (see ``accounts.admin``).

Sits at the bottom layer beside ``trial``: it may import ``trial``; ``trial`` never imports it.
"""
