from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "People and sign-in"

    def ready(self) -> None:
        """Note when the password was last given: setting up a device needs a recent one."""
        from django.contrib.auth.signals import user_logged_in

        from .policy import note_password_sign_in

        user_logged_in.connect(note_password_sign_in, dispatch_uid="accounts.password_sign_in")
