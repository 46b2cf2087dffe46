"""Accounts: single sign-on through OpenID Connect providers, beside the password sign-in."""
