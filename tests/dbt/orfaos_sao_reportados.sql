{{ config(
    severity='warn',
    store_failures=(target.type == 'postgres'),
    schema='audit',
) }}

-- Reports how many bronze rows silver excluded for a broken reference (the warning's
-- count), so the number is seen on every build. The rows and reasons are in silver.orfaos.
select
    entidade,
    registro_id,
    motivo
from {{ ref('audit_orfaos') }}
