"""MariaDB plugin, serving the datastores `mariadb` and `mysql`: one module per
lifecycle verb (installdb, run, status, users), as the PostgreSQL plugin."""
