{{ config(alias='moradores') }}

with

latest as (
    {{ latest_version_by_id(source('bronze', 'moradores'), 'morador_id') }}
),

condominios as (
    select condominio_id from {{ ref('stg_condominios') }}
)

select
    cast(latest.morador_id as integer) as morador_id,
    {{ as_varchar('trim(latest.nome)', 255) }} as nome,
    cast(latest.condominio_id as integer) as condominio_id,
    cast(latest.data_registro as date) as data_registro,
    {{ lineage_columns('latest') }}
from latest
inner join condominios
    on latest.condominio_id = condominios.condominio_id
