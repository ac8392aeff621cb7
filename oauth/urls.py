app_name = "oauth"

urlpatterns: list = []
