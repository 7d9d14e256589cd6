from django.db import models


class Token(models.Model):
    key = models.CharField(max_length=64, unique=True)


class Post(models.Model):
    room = models.CharField(max_length=64, db_index=True)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
