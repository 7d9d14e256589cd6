from django.urls import path

from forum import views

urlpatterns = [
    path("api/ready", views.ready),
    path("api/signin", views.signin),
    path("api/rooms/<str:room>/posts", views.create_post),
]
