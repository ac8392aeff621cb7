from django.urls import path

app_name = "oauth"

urlpatterns: list = []
