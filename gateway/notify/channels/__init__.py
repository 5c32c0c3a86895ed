"""One module per notification channel; each implements `gateway.notify.base.Notifier`."""
