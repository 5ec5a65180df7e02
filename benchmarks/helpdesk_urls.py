"""Our URLs plus django-helpdesk's, for ``benchmarks/mail.py`` only: helpdesk's ``get_email``
links to its own screens in the notification mails it renders, and those screens are not part
of this product."""

from django.urls import include, path
from helpdesk import settings as helpdesk_settings

from config.urls import urlpatterns as product_urlpatterns

# helpdesk 2.6.1's urls.py names its knowledge-base views unconditionally and fails to import
# when the knowledge base is off (as it is here), so it is switched on for its URLs to load.
helpdesk_settings.HELPDESK_KB_ENABLED = True

urlpatterns = [*product_urlpatterns, path("helpdesk/", include("helpdesk.urls"))]
