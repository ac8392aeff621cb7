from django.urls import path

app_name = "apiclients"

urlpatterns: list = []
