from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("", include("webapp.urls")),
]

# A request that finds the database or the broker gone gets a 503, not a 500 (dataengine.outage).
handler500 = "dataengine.outage.server_error"
