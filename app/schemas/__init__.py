"""What the OpenAPI document says of the API's bodies: the multipart forms the upload routes
read (:mod:`app.schemas.forms`) and the JSON they answer (:mod:`app.schemas.responses`; a job's
in :mod:`app.schemas.jobs`)."""
