app_name = "apiclients"

urlpatterns: list = []
